"""providers/sendgrid"""
